package android.widget;

import android.content.Context;

public class ListView extends AdapterView {

    public ListView(Context context) {
        super(context);
    }

    public void setAdapter(ArrayAdapter<?> adapter) {}
}
