"""Output stage: tables, key figures, plots and the one HTML page builder; a run into a folder."""
