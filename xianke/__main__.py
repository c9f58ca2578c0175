from xianke.cli import main

main()
