"""Benefits' official documents: the recovery notice (追回社会保险待遇告知书, 001 第二十九条(四))."""
