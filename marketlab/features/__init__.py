"""Features computed from the store: TLOB labels (:mod:`.labels`), the alpha expression language
(:mod:`.expr`), IC statistics (:mod:`.ic`) and daily panels as tensors (:mod:`.panel_tensor`)."""
