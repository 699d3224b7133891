"""Model registry: one module per model, imported only when that model is used."""
