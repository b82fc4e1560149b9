"""Health articles: staff write Markdown (sanitised when rendered), tagged by topic; search, and a patient
feed matched to their conditions and medications."""
