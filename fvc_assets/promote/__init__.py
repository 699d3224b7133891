"""Promotion: the comparison's pick packaged as a bundle, registered in MLflow, and made champion past a gate."""
