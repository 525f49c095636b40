"""Shared code of the job-processing bundle: the api/ files are thin adapters over it."""
