vec![]
