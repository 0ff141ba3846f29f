"""The Python end of the wire: the gRPC server a player connects to, player processes, the EnvActor."""
