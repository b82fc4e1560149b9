"""Recording encounters (visits): diagnoses, vital signs and outcome, for patients in the clinician's care."""
