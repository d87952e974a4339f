from langgraph_stl.cli import main

main()
