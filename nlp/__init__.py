"""Chinese text: normalisation, jieba tokens, embeddings, sentiment, topics."""
