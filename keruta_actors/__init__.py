"""keruta_actors: the log-streaming agent that runs beside a keruta task's script."""

__version__ = "0.1.0"
