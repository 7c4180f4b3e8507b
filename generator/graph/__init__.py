"""From a spec's expressions to a graph of operations with shapes."""
