"""This repository's CI harness: real infrastructure (PostgreSQL, Redis, Docker) for the suite."""
