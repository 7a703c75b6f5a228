"""Public disclosure (信息披露, 003 二.4): income, expenditure and balance per fund and month, closed months only."""
