package sqlsearch

import "strings"

// TextTable holds the rows of _text (the narrative's words) and _content
// (every string of the resource, its first 2 KiB), folded (migration
// 0009). They are searched only by :contains, a scan of the type's rows
// that no index ordered by the text could shorten; in the string index's
// find index, ordered by the text itself, each was a 300-byte entry on a
// random page, the costliest row of a write. Here a row is keyed by
// (type, id, param, grp): written in id order, beside the previous
// resource's.
const TextTable = "idx_text"

// TextParam reports whether a string row of param (also a contained
// resource's "#Type.param") belongs in TextTable.
func TextParam(param string) bool {
	if strings.HasPrefix(param, containedPrefix) {
		if i := strings.LastIndexByte(param, '.'); i >= 0 {
			param = param[i+1:]
		}
	}
	return param == "_text" || param == "_content"
}
