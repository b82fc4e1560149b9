"""Blood supply analytics: usage and donation trends, demand forecasts and projected shortages for blood bank
staff, and the need for their blood group for donors."""
