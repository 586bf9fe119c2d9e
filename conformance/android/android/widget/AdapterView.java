package android.widget;

import android.content.Context;
import android.view.View;
import android.view.ViewGroup;

public class AdapterView extends ViewGroup {

    public interface OnItemClickListener {
        void onItemClick(AdapterView parent, View view, int position, long id);
    }

    public AdapterView(Context context) {
        super(context);
    }

    public void setOnItemClickListener(OnItemClickListener l) {}
}
