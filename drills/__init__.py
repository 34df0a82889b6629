"""Fault drills under load (`make drills`): one module per drill, each exposing `drill(env) -> Drill`."""
