"""What every door shares and core must not know: opening the models, the store and the LLM source."""
