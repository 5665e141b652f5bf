"""Local model backends behind small protocols: the LLM (text generation) and the text embedder."""
