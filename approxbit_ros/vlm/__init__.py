"""Vision-language models split inside the vision encoder (ApproxBit §4: LLaVA-OneVision)."""
