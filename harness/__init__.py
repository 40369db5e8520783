"""dydx: measure how accurate and how fast each way of computing a derivative is."""
