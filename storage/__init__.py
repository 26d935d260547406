"""Storage: SQLModel models, the engine, repositories and Alembic migrations."""
