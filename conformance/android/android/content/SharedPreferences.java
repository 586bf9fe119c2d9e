package android.content;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;

public interface SharedPreferences {
    Map<String, ?> getAll();

    String getString(String key, String defValue);

    Set<String> getStringSet(String key, Set<String> defValues);

    int getInt(String key, int defValue);

    long getLong(String key, long defValue);

    boolean getBoolean(String key, boolean defValue);

    boolean contains(String key);

    Editor edit();

    interface Editor {
        Editor putString(String key, String value);

        Editor putStringSet(String key, Set<String> values);

        Editor putInt(String key, int value);

        Editor putLong(String key, long value);

        Editor putBoolean(String key, boolean value);

        Editor remove(String key);

        Editor clear();

        boolean commit();

        void apply();
    }

    // One process, one run: preferences live in memory; edits apply at once,
    // which is what commit() would guarantee on a device.
    final class InMemory implements SharedPreferences {

        private final Map<String, Object> values = new HashMap<>();

        public synchronized Map<String, ?> getAll() {
            return new HashMap<>(values);
        }

        public synchronized String getString(String key, String defValue) {
            Object v = values.get(key);
            return v instanceof String ? (String) v : defValue;
        }

        @SuppressWarnings("unchecked")
        public synchronized Set<String> getStringSet(String key, Set<String> defValues) {
            Object v = values.get(key);
            return v instanceof Set ? (Set<String>) v : defValues;
        }

        public synchronized int getInt(String key, int defValue) {
            Object v = values.get(key);
            return v instanceof Integer ? (Integer) v : defValue;
        }

        public synchronized long getLong(String key, long defValue) {
            Object v = values.get(key);
            return v instanceof Long ? (Long) v : defValue;
        }

        public synchronized boolean getBoolean(String key, boolean defValue) {
            Object v = values.get(key);
            return v instanceof Boolean ? (Boolean) v : defValue;
        }

        public synchronized boolean contains(String key) {
            return values.containsKey(key);
        }

        public Editor edit() {
            return new Editor() {
                private Editor put(String key, Object value) {
                    synchronized (InMemory.this) {
                        if (value == null) values.remove(key);
                        else values.put(key, value);
                    }
                    return this;
                }

                public Editor putString(String key, String value) {
                    return put(key, value);
                }

                public Editor putStringSet(String key, Set<String> value) {
                    return put(key, value);
                }

                public Editor putInt(String key, int value) {
                    return put(key, value);
                }

                public Editor putLong(String key, long value) {
                    return put(key, value);
                }

                public Editor putBoolean(String key, boolean value) {
                    return put(key, value);
                }

                public Editor remove(String key) {
                    return put(key, null);
                }

                public Editor clear() {
                    synchronized (InMemory.this) {
                        values.clear();
                    }
                    return this;
                }

                public boolean commit() {
                    return true;
                }

                public void apply() {}
            };
        }
    }
}
