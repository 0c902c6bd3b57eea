"""The example's HTTP routers, one module per resource."""
