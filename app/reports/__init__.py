"""Deputies reporting to their voters (述职评议): reports and evaluations."""
