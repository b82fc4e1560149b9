"""Medical imaging AI: studies, DICOM decoding, the condition catalog, models, training, inference with
Grad-CAM, and the model registry."""
