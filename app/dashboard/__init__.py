"""Read-only statistics, the deputies' duty archive (履职档案) and exports."""
