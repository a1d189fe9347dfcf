"""cotan.autodiff: parsing, normalization to core form, and the source
transformations (forward, reverse, batching) with their rules."""
