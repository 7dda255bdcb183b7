// Markdown as the model writes it (GFM: tables, lists, code), sanitised: no raw HTML, no
// script URLs. Code blocks get a copy button. Re-rendered as the text streams in.
import ReactMarkdown from "react-markdown";
import rehypeSanitize from "rehype-sanitize";
import remarkGfm from "remark-gfm";

import { CopyButton } from "./copy.jsx";

function Pre({ children }) {
  const code = children?.props?.children;
  return (
    <div className="code-block">
      <CopyButton text={typeof code === "string" ? code.replace(/\n$/, "") : ""} label="Copy code" />
      <pre>{children}</pre>
    </div>
  );
}

function Link({ href, children }) {
  return (
    <a href={href} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  );
}

const COMPONENTS = { pre: Pre, a: Link };

export function Markdown({ text }) {
  return (
    <div className="text markdown">
      <ReactMarkdown remarkPlugins={[remarkGfm]} rehypePlugins={[rehypeSanitize]} components={COMPONENTS}>
        {text}
      </ReactMarkdown>
    </div>
  );
}
