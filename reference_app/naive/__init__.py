"""The naive design: what the reviewed chat backends do (see docs and the seeds' reviews)."""
