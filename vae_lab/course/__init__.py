"""Course tooling around the lab: personal assignments, grading a class against trusted reference runs."""
