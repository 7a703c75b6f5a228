"""Fund budgets (预算): line items, approval chain, monthly execution, adjustments, final accounts (002 二、三)."""
