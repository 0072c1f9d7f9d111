package auxmaker

import "github.com/hashpool/hashpool/node"

func nodeOpts(url string) node.Options { return node.Options{URL: url, User: "u", Password: "p"} }
