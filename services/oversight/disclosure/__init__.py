"""Public disclosure (信息披露, 003 二.4): income, expenditure, period surplus and accumulated balance per fund and month, closed months only."""
