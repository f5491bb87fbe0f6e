package config

import "reflect"

// settingsMap turns a typed settings struct (RedisInvalidationConfig) into
// the DriverConfig map the driver decodes: the typed struct is the map's
// schema, so both forms reach the driver through one decoder and one set of
// checks. Keys are the Go field names; zero fields are left out (zero means
// the default in both forms); a pointer to a struct becomes a nested map;
// slices are copied, so the driver never shares the caller's.
func settingsMap(v reflect.Value) map[string]any {
	m := map[string]any{}
	t := v.Type()
	for i := range t.NumField() {
		f, fv := t.Field(i), v.Field(i)
		if !f.IsExported() || fv.IsZero() {
			continue
		}
		switch {
		case fv.Kind() == reflect.Pointer && fv.Elem().Kind() == reflect.Struct:
			m[f.Name] = settingsMap(fv.Elem())
		case fv.Kind() == reflect.Slice:
			c := reflect.MakeSlice(fv.Type(), fv.Len(), fv.Len())
			reflect.Copy(c, fv)
			m[f.Name] = c.Interface()
		default:
			m[f.Name] = fv.Interface()
		}
	}
	return m
}
