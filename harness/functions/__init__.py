"""The functions a study differentiates: primitives and expression trees (nodes), the safe
expression parser (expr), and the catalog of named builtins, torch.nn activations and user
code (catalog)."""
