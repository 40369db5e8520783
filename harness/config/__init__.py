"""Configuration: the types (schema), their registration with Hydra (store), and their
meaning (validate: a composed config -> a Study, or one line that says what is wrong)."""
