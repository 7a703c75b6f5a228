"""Major-incident reports (要情报告): deadlines, late marking, half-yearly summary."""
