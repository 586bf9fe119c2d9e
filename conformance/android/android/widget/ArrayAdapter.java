package android.widget;

import android.content.Context;
import java.util.List;

public class ArrayAdapter<T> {

    public ArrayAdapter(Context context, int resource, List<T> objects) {
        throw new UnsupportedOperationException("no screen on this device");
    }

    public void clear() {}

    public void addAll(java.util.Collection<? extends T> items) {}

    public void notifyDataSetChanged() {}

    public T getItem(int position) {
        return null;
    }
}
