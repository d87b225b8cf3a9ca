"""Stage 2, the ask: question + settings -> the call -> DashScope (text | multimodal) -> one Result."""
