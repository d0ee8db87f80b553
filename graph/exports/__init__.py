"""The data exports area: requestDataExport, myDataExports, dataExport(id)."""
