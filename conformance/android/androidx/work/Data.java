package androidx.work;

import java.util.Collections;
import java.util.HashMap;
import java.util.Map;

public final class Data {

    public static final Data EMPTY = new Data(new HashMap<>());

    private final Map<String, Object> values;

    private Data(Map<String, Object> values) {
        this.values = Collections.unmodifiableMap(values);
    }

    public String getString(String key) {
        Object v = values.get(key);
        return v instanceof String ? (String) v : null;
    }

    public int getInt(String key, int defaultValue) {
        Object v = values.get(key);
        return v instanceof Integer ? (Integer) v : defaultValue;
    }

    public long getLong(String key, long defaultValue) {
        Object v = values.get(key);
        return v instanceof Long ? (Long) v : defaultValue;
    }

    public boolean getBoolean(String key, boolean defaultValue) {
        Object v = values.get(key);
        return v instanceof Boolean ? (Boolean) v : defaultValue;
    }

    public Map<String, Object> getKeyValueMap() {
        return values;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Data && values.equals(((Data) o).values);
    }

    @Override
    public int hashCode() {
        return values.hashCode();
    }

    public static final class Builder {

        private final Map<String, Object> values = new HashMap<>();

        // Like WorkManager's Data, a null value leaves the key out.
        private Builder put(String key, Object value) {
            if (value == null) values.remove(key);
            else values.put(key, value);
            return this;
        }

        public Builder putString(String key, String value) {
            return put(key, value);
        }

        public Builder putInt(String key, int value) {
            return put(key, value);
        }

        public Builder putLong(String key, long value) {
            return put(key, value);
        }

        public Builder putBoolean(String key, boolean value) {
            return put(key, value);
        }

        public Builder putAll(Data other) {
            values.putAll(other.values);
            return this;
        }

        public Data build() {
            return new Data(new HashMap<>(values));
        }
    }
}
