import io.anserini.analysis.AnalyzerUtils;
import io.anserini.analysis.DefaultEnglishAnalyzer;
import io.anserini.search.SimpleSearcher;
import org.apache.lucene.analysis.Analyzer;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.List;

/** Dev-time oracle: prints Anserini's analyzer tokens and SimpleSearcher results (one JSON-ish line each). */
public class Oracle {
  static String esc(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20 || c > 0x7e) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }
  public static void main(String[] args) throws Exception {
    System.out.println("# lucene " + org.apache.lucene.util.Version.LATEST);
    BufferedReader in = new BufferedReader(new InputStreamReader(new FileInputStream(args[1]), StandardCharsets.UTF_8));
    PrintStream out = new PrintStream(new FileOutputStream(args[2]), true, "UTF-8");
    if (args[0].equals("tokens")) {
      Analyzer a = DefaultEnglishAnalyzer.newDefaultInstance();
      String line;
      while ((line = in.readLine()) != null) {
        List<String> toks = AnalyzerUtils.analyze(a, line);
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < toks.size(); i++) { if (i > 0) b.append(','); b.append(esc(toks.get(i))); }
        out.println(b.append(']'));
      }
    } else {
      SimpleSearcher s = new SimpleSearcher(args[3]);
      int k = Integer.parseInt(args[4]);
      String line;
      while ((line = in.readLine()) != null) {
        SimpleSearcher.Result[] hits = s.search(line, k);
        StringBuilder b = new StringBuilder("[");
        for (int i = 0; i < hits.length; i++) {
          if (i > 0) b.append(',');
          b.append("[").append(esc(hits[i].docid)).append(',').append(Float.floatToIntBits(hits[i].score)).append(']');
        }
        out.println(b.append(']'));
      }
    }
  }
}
