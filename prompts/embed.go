package prompts

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:generate ./render.sh

// defaultFS holds the default prompt set, default/<lang>/<name>.wav. Only
// the WAVs are embedded; their texts are in default/prompts.tsv.
//
//go:embed default/*/*.wav
var defaultFS embed.FS

// defaultName is how errors name the embedded set: the path of its source
// directory in this module.
const defaultName = "prompts/default"

// LoadEmbedded loads the default prompt set compiled into the binary. It
// decodes and encodes every prompt, so call it once at start-up (or per
// reload) and keep the result.
func LoadEmbedded() (*Catalogue, error) {
	sub, err := fs.Sub(defaultFS, "default")
	if err != nil {
		return nil, fmt.Errorf("open embedded prompts: %w", err)
	}
	return Load(sub, defaultName)
}
