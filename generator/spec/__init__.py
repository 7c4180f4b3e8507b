"""The spec: its model, reading its file, loading and validating the YAML, the JSON schema."""
