"""Flyte programs that use files, directories, tables, resources and secrets (issue 15)."""
