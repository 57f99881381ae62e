"""One sync run: pull, map, record, plan, deliver, and its summary."""
