"""Models: the strategies, loading bases and model folders, the Qwen tokenizer, the offline tiny model."""
