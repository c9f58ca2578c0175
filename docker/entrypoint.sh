#!/bin/sh
# Every service of the image runs `xianke <command>`. The encoder is built into the image at build time
# (/opt/xianke/models); the data volume (/data) holds the database, indexes and the author salt, so
# point <data_dir>/models at the built encoder unless the volume brings its own.
set -eu
DATA_DIR="${XIANKE_DATA_DIR:-/data}"
mkdir -p "$DATA_DIR"
if [ ! -e "$DATA_DIR/models" ]; then
    ln -s /opt/xianke/models "$DATA_DIR/models"
fi
exec xianke "$@"
