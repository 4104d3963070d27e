package web

import (
	"html/template"
	"strings"
)

// pageNames are the console's pages; each file defines "content", shown in
// the layout.
var pageNames = []string{"overview", "credit", "methods", "history", "alerts", "budgets", "notifications", "pay", "login", "signedout", "error"}

var funcs = template.FuncMap{
	"formatTime": formatTime,
	"isoTime":    isoTime,
	"lower":      strings.ToLower,
}

// parsePages parses every page with the layout, once, at start: a broken
// template stops the program before it serves anything.
func parsePages() map[string]*template.Template {
	base := template.Must(template.New("layout").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html"))
	out := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(templateFiles, "templates/"+name+".html"))
	}
	return out
}
