"""Rules as data: behaviours of each cell type modulated by signals through Hill functions."""
